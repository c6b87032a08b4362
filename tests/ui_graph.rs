//! The graph view driven headless through egui_kittest (accessibility check on): filters,
//! denies, drift, dragging to pin, the animation switch and repaints, zoom and level of
//! detail, the SVG and PNG exports, and the export field's file dialog.
#![cfg(feature = "gui")]

use std::path::Path;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use meshlens::mesh::graph::NodeId;
use meshlens::tap::{Endpoint, Event, Inspection, MessageSide};
use meshlens::ui::file_dialog::{Answer, Backend, Browse, Mode};
use meshlens::ui::frame_pacing;
use meshlens::ui::graph::Detail;
use meshlens::ui::shell::Shell;

#[path = "common/events.rs"]
mod events;

use events::{T0, deny, response_end, workload};

/// One request from `client` to `server`, denied when `verdict` says so.
fn request(stream: u64, client: &Endpoint, server: &Endpoint, verdict: &str) -> Event {
    let mut e = response_end(stream, T0 + stream as i64 * 1_000, client, server);
    if verdict == "deny" {
        deny(&mut e, "no authorization matched the client");
    }
    e
}

/// web -> orders (shop), orders -> payments (billing), and web -> payments denied; the
/// web -> orders messages drift incompatibly.
fn shell() -> Shell {
    let mut shell = Shell::new("test events");
    let web = workload("web", "shop", 1);
    let orders = workload("orders", "shop", 2);
    let payments = workload("payments", "billing", 3);
    for i in 0..20 {
        let mut e = request(i, &web, &orders, "allow");
        e.avro.push(Inspection {
            side: Some(MessageSide::Request),
            framing: "confluent".into(),
            subject: Some("orders-value".into()),
            version: Some(3),
            reader_version: Some(2),
            drift: Some("incompatible".into()),
            valid: false,
            ..Inspection::default()
        });
        shell.apply(&e);
        shell.apply(&request(100 + i, &orders, &payments, "allow"));
    }
    shell.apply(&request(200, &web, &payments, "deny"));
    shell.welcome = false;
    shell
}

/// `n` workloads in 10 namespaces and `m` distinct edges, from a fixed-seed generator.
fn synthetic(n: u32, m: usize) -> Shell {
    let mut shell = Shell::new("synthetic");
    let nodes: Vec<Endpoint> = (0..n)
        .map(|i| workload(&format!("svc-{i}"), &format!("ns-{}", i % 10), i + 1))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut stream = 0;
    while seen.len() < m {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let (a, b) = (
            (s % u64::from(n)) as usize,
            ((s >> 32) % u64::from(n)) as usize,
        );
        if a == b || !seen.insert((a, b)) {
            continue;
        }
        stream += 1;
        shell.apply(&request(stream, &nodes[a], &nodes[b], "allow"));
    }
    shell.welcome = false;
    shell
}

fn harness(shell: Shell) -> Harness<'static, Shell> {
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_ui_state(|ui, shell: &mut Shell| shell.ui(ui), shell)
}

fn id_of(h: &Harness<'_, Shell>, name: &str) -> NodeId {
    h.state()
        .mesh
        .graph()
        .nodes()
        .find(|n| n.workload.as_deref() == Some(name))
        .map(|n| n.id)
        .expect("node exists")
}

#[test]
fn identity_text_and_namespace_filters_hide_nodes() {
    let mut h = harness(shell());
    h.run_steps(5);
    h.get_by_label("shop/web");
    h.get_by_label("Identity:").focus();
    h.get_by_label("Identity:").type_text("pay");
    h.run_steps(3);
    assert_eq!(h.state().graph.filter.identity, "pay");
    assert!(h.query_by_label("shop/web").is_none());
    assert!(h.query_by_label("shop/orders").is_none());
    h.get_by_label("billing/payments");
    assert_eq!(h.state().graph.visible().nodes.len(), 1);

    h.state_mut().graph.filter.identity.clear();
    h.run_steps(2);
    h.get_by_label("Namespaces").click();
    h.run_steps(2);
    h.get_by_label("billing").click();
    h.run_steps(3);
    assert!(h.state().graph.filter.hidden_namespaces.contains("billing"));
    assert!(h.query_by_label("billing/payments").is_none());
    h.get_by_label("shop/web");
    h.get_by_label("shop/orders");
}

#[test]
fn only_denies_shows_only_denied_edges_and_their_ends() {
    let mut h = harness(shell());
    h.run_steps(5);
    assert_eq!(h.state().graph.visible().edges.len(), 3);
    h.get_by_label("Only denies").click();
    h.run_steps(3);
    let visible = h.state().graph.visible();
    assert_eq!(visible.edges.len(), 1);
    assert!(visible.edges.iter().all(|e| e.denied > 0));
    h.get_by_label("shop/web");
    h.get_by_label("billing/payments");
    assert!(h.query_by_label("shop/orders").is_none());
}

#[test]
fn only_drift_shows_the_workloads_of_a_drifting_schema() {
    let mut h = harness(shell());
    h.run_steps(5);
    h.get_by_label("Only drift").click();
    h.run_steps(3);
    h.get_by_label("shop/web");
    h.get_by_label("shop/orders");
    assert!(h.query_by_label("billing/payments").is_none());
    assert_eq!(h.state().graph.visible().edges.len(), 1);
}

#[test]
fn dragging_a_node_pins_it_and_the_context_menu_unpins_it() {
    let mut h = harness(shell());
    h.run_steps(60);
    let web = id_of(&h, "web");
    assert!(!h.state().graph.is_pinned(web));
    let from = h.get_by_label("shop/web").rect().center();
    let before = h.state().graph.position(web).unwrap();
    h.drag_at(from);
    h.run_steps(1);
    for k in 1..=6 {
        h.hover_at(from + egui::vec2(15.0 * k as f32, 10.0 * k as f32));
        h.run_steps(1);
    }
    h.drop_at(from + egui::vec2(90.0, 60.0));
    h.run_steps(1);
    assert!(h.state().graph.is_pinned(web));
    let after = h.state().graph.position(web).unwrap();
    assert!(
        (after[0] - before[0]).abs() > 10.0,
        "{before:?} -> {after:?}"
    );
    // Pinned nodes stay put while the others settle.
    h.run_steps(30);
    assert_eq!(h.state().graph.position(web), Some(after));

    h.get_by_label("shop/web").click_secondary();
    h.run_steps(2);
    h.get_by_label("Unpin").click();
    h.run_steps(2);
    assert!(!h.state().graph.is_pinned(web));
}

/// Whether the last frame asked for the next one within an animation period.
fn wants_frames(h: &Harness<'_, Shell>) -> bool {
    h.output().viewport_output[&egui::ViewportId::ROOT].repaint_delay <= frame_pacing::PERIOD
}

#[test]
fn animation_repaints_only_while_on_and_traffic_flows() {
    let mut h = harness(shell());
    // Traffic just arrived: dots move, so frames keep coming.
    h.run_steps(1);
    assert!(wants_frames(&h));
    // A few seconds (of egui time) without events: the dots stop and so do the frames.
    h.run_steps(40);
    assert!(!h.state().graph.is_settling());
    h.run();
    assert!(!wants_frames(&h));

    let (web, orders) = (workload("web", "shop", 1), workload("orders", "shop", 2));
    h.state_mut().apply(&request(500, &web, &orders, "allow"));
    h.run_steps(1);
    assert!(wants_frames(&h), "new traffic animates");

    h.get_by_label("Animate traffic").click();
    h.run_steps(2);
    assert!(!h.state().graph.animate);
    h.state_mut().apply(&request(501, &web, &orders, "allow"));
    h.run();
    assert!(!wants_frames(&h));
}

#[test]
fn animation_asks_for_sixty_frames_a_second_rather_than_as_many_as_it_can() {
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .with_context_setup(move |ctx| {
            ctx.set_repaint_observer(move |info| seen.lock().unwrap().push(info.delay));
        })
        .build_ui_state(|ui, shell: &mut Shell| shell.ui(ui), shell());
    h.run_steps(1);
    // Animation that begins waits one period; later frames land on its beat, or come at
    // once only when a frame ran a whole period late, which a busy test machine can do.
    let asked = asked.lock().unwrap().clone();
    assert!(asked.contains(&frame_pacing::PERIOD), "{asked:?}");
}

#[test]
fn zooming_out_reduces_detail_and_zooming_in_restores_it() {
    let mut h = harness(shell());
    h.run_steps(10);
    assert_eq!(h.state().graph.detail(), Detail::Full);
    let z = h.state().graph.zoom();
    for _ in 0..4 {
        h.get_by_label("−").click();
        h.run_steps(1);
    }
    assert!(h.state().graph.zoom() < z);
    assert_eq!(h.state().graph.detail(), Detail::Reduced);
    for _ in 0..4 {
        h.get_by_label("+").click();
        h.run_steps(1);
    }
    assert_eq!(h.state().graph.detail(), Detail::Full);
}

#[test]
fn a_crowded_graph_with_few_edges_is_drawn_with_reduced_detail() {
    let mut h = harness(synthetic(300, 600));
    h.run_steps(5);
    let graph = &h.state().graph;
    assert_eq!(graph.visible().edges.len(), 600);
    assert_eq!(graph.detail(), Detail::Reduced);
    assert_eq!(graph.drawn().bundles, 0);
}

#[test]
fn a_big_mesh_zoomed_out_folds_edges_between_namespaces_into_links() {
    let mut h = harness(synthetic(500, 5000));
    h.run_steps(5);
    let graph = &h.state().graph;
    assert_eq!(graph.visible().nodes.len(), 500);
    assert_eq!(graph.visible().edges.len(), 5000);
    assert_eq!(graph.detail(), Detail::Overview);
    let visible = graph.visible();
    let inside = visible.edges.iter().filter(|e| e.inside).count();
    let between = visible.edges.iter().filter(|e| e.bundle.is_some()).count();
    assert_eq!(inside + between, 5000, "every workload is in a namespace");
    assert_eq!(
        visible.inside.values().map(|i| i.edges).sum::<usize>(),
        inside,
        "the boxes count the edges inside their namespace"
    );
    let drawn = graph.drawn();
    assert_eq!(
        drawn.bundles, 45,
        "one link per pair of 10 namespaces, for both directions"
    );
    assert_eq!(
        drawn.edges, 0,
        "no edge is drawn one by one until a workload is hovered or selected"
    );
    assert!(
        h.query_by_label_contains("Overview: one link per pair of namespaces")
            .is_some()
    );
}

#[test]
fn the_overview_draws_the_selected_workloads_own_edges() {
    let mut h = harness(synthetic(500, 5000));
    h.run_steps(5);
    let before = h.state().graph.drawn().edges;
    let id = id_of(&h, "svc-7");
    let own = h
        .state()
        .graph
        .visible()
        .edges
        .iter()
        .filter(|e| e.client == id || e.server == id)
        .count();
    assert!(own > 0);
    h.state_mut().graph.selected = Some(id);
    h.run_steps(2);
    assert_eq!(h.state().graph.detail(), Detail::Overview);
    assert_eq!(h.state().graph.drawn().edges, before + own);
}

#[test]
fn zooming_into_a_big_mesh_draws_every_edge_again() {
    let mut h = harness(synthetic(500, 5000));
    h.run_steps(5);
    assert_eq!(h.state().graph.detail(), Detail::Overview);
    for _ in 0..8 {
        h.get_by_label("+").click();
        h.run_steps(1);
    }
    let graph = &h.state().graph;
    assert_ne!(graph.detail(), Detail::Overview);
    assert_eq!(graph.drawn().bundles, 0);
    assert!(graph.drawn().edges > 0);
}

/// Runs the click's frame, then frames until the worker has reported.
fn wait_for_export(h: &mut Harness<'_, Shell>) {
    h.step();
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.state().graph.export.outcome.is_none() {
        assert!(Instant::now() < deadline, "the export never finished");
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    h.run_steps(1);
}

#[test]
fn export_writes_an_svg_with_the_nodes_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("graph.svg");
    let mut h = harness(shell());
    h.run_steps(10);
    h.state_mut().graph.export.path = path.display().to_string();
    h.get_by_label("Export").click();
    wait_for_export(&mut h);
    h.get_by_label_contains("saved ");
    let svg = std::fs::read_to_string(&path).unwrap();
    for name in ["shop/web", "shop/orders", "billing/payments", ">billing<"] {
        assert!(svg.contains(name), "{name} missing from the SVG");
    }

    h.state_mut().graph.export.path = dir.path().join("no/such/dir/g.svg").display().to_string();
    h.get_by_label("Export").click();
    wait_for_export(&mut h);
    h.get_by_label_contains("cannot write");
}

/// The `width`/`height` attributes of an exported SVG.
fn svg_size(svg: &str) -> (f32, f32) {
    let attr = |name: &str| -> f32 {
        let start = svg.find(&format!(" {name}=\"")).expect("attribute") + name.len() + 3;
        let len = svg[start..].find('"').unwrap();
        svg[start..start + len].parse().unwrap()
    };
    (attr("width"), attr("height"))
}

#[test]
fn export_to_a_png_name_writes_a_picture_of_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(shell());
    // The layout stops moving, so both exports draw the same picture.
    for _ in 0..2_000 {
        if !h.state().graph.is_settling() {
            break;
        }
        h.step();
    }
    assert!(!h.state().graph.is_settling(), "the layout never settled");
    let svg_path = dir.path().join("graph.svg");
    h.state_mut().graph.export.path = svg_path.display().to_string();
    h.get_by_label("Export").click();
    wait_for_export(&mut h);
    let (w, h_) = svg_size(&std::fs::read_to_string(&svg_path).unwrap());

    let png_path = dir.path().join("graph.PNG");
    h.state_mut().graph.export.path = png_path.display().to_string();
    h.get_by_label("Export").click();
    wait_for_export(&mut h);
    h.get_by_label_contains("graph.PNG");
    let pixmap = resvg::tiny_skia::Pixmap::load_png(&png_path).expect("a valid PNG");
    assert_eq!(
        (pixmap.width(), pixmap.height()),
        ((w * 2.0).round() as u32, (h_ * 2.0).round() as u32)
    );
    let background = pixmap.pixel(0, 0).unwrap();
    let drawn = pixmap.pixels().iter().filter(|&&p| p != background).count();
    assert!(
        drawn > pixmap.pixels().len() / 100,
        "only {drawn} pixels differ from the background"
    );

    h.state_mut().graph.export.path = dir.path().join("graph.jpg").display().to_string();
    h.get_by_label("Export").click();
    h.run();
    h.get_by_label("end the file name in .svg or .png");
}

fn no_dialog(_: Mode, _: &Path) -> Answer {
    Answer::Unavailable("no D-Bus session bus, no zenity".into())
}

fn cancelled(_: Mode, _: &Path) -> Answer {
    Answer::Cancelled
}

fn chosen(mode: Mode, start: &Path) -> Answer {
    assert_eq!((mode, start), (Mode::Save, Path::new("meshlens-graph.svg")));
    Answer::Chosen("/tmp/chosen.png".into())
}

/// Clicks "Browse…" and steps until the dialog thread has answered.
fn browse_with(h: &mut Harness<'_, Shell>, backend: Backend) {
    h.state_mut().graph.browse = Browse::with_backend(backend);
    h.get_by_label("Browse…").click();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        h.step();
        if h.query_by_label("Browse…")
            .is_some_and(|b| !b.accesskit_node().is_disabled())
        {
            break;
        }
        assert!(Instant::now() < deadline, "the dialog never answered");
        std::thread::sleep(Duration::from_millis(5));
    }
    h.run_steps(2);
}

#[test]
fn a_missing_file_dialog_says_so_under_the_field_and_a_cancel_says_nothing() {
    let mut h = harness(shell());
    h.run_steps(3);
    let message =
        "No file dialog on this desktop (no D-Bus session bus, no zenity) — type the path instead";

    browse_with(&mut h, no_dialog);
    h.get_by_label(message);
    assert_eq!(h.state().graph.export.path, "meshlens-graph.svg");

    browse_with(&mut h, cancelled);
    assert!(
        h.query_by_label(message).is_none(),
        "a cancel clears it and says nothing"
    );
    assert_eq!(h.state().graph.export.path, "meshlens-graph.svg");

    browse_with(&mut h, chosen);
    assert_eq!(h.state().graph.export.path, "/tmp/chosen.png");
}

#[test]
fn counts_on_screen_follow_the_model_within_a_refresh() {
    let mut h = harness(shell());
    h.run_steps(2);
    let requests = |h: &Harness<'_, Shell>| -> u64 {
        h.state()
            .graph
            .visible()
            .edges
            .iter()
            .map(|e| e.requests)
            .sum()
    };
    let before = requests(&h);
    let (web, orders) = (workload("web", "shop", 1), workload("orders", "shop", 2));
    h.state_mut().apply(&request(300, &web, &orders, "allow"));
    // Each step is a quarter of a second of egui time: the refresh is due by the second.
    h.run_steps(2);
    assert_eq!(requests(&h), before + 1);
}

#[test]
fn a_big_mesh_refreshes_its_counts_a_slice_per_frame_until_every_edge_is_read() {
    let mut h = harness(synthetic(500, 5000));
    h.run_steps(5);
    // The last edge drawn is in the last slice a refresh reads.
    let last = h.state().graph.visible().edges.last().cloned().unwrap();
    let endpoint = |id: NodeId| {
        let name = h
            .state()
            .mesh
            .graph()
            .node(id)
            .unwrap()
            .workload
            .clone()
            .unwrap();
        let i: u32 = name.trim_start_matches("svc-").parse().unwrap();
        workload(&name, &format!("ns-{}", i % 10), i + 1)
    };
    let (client, server) = (endpoint(last.client), endpoint(last.server));
    h.state_mut()
        .apply(&request(1_000_000, &client, &server, "deny"));
    let denied_on_screen = |h: &Harness<'_, Shell>| {
        let visible = h.state().graph.visible();
        let edge = visible.edges.last().unwrap();
        let folded = match edge.bundle {
            Some(b) => visible.bundles[b].denied_edges,
            None => visible.inside.values().map(|i| i.denied_edges).sum(),
        };
        (edge.denied, folded)
    };
    let before = denied_on_screen(&h);
    assert_eq!(before.0, 0);
    // The refresh begins in this frame and reads the first 1,250 edges only...
    h.run_steps(1);
    assert_eq!(denied_on_screen(&h), before, "one slice per frame");
    // ...and the 5,000th in its fourth frame, folded into its link or box.
    h.run_steps(3);
    assert_eq!(denied_on_screen(&h), (1, before.1 + 1));
}
