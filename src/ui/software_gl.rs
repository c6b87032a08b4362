//! Keeping frames cheap on a software renderer (Mesa's llvmpipe: this machine, virtual
//! machines, remote desktops), where every pixel painted and every page faulted in is CPU.
//!
//! The renderer clears to the theme's panel colour and panels are transparent: a
//! full-window fill costs several milliseconds per frame, and the shell and every view each
//! painted one under the other; the bars and side panels were another tenth of the window.
//! Dithering is off: it is shader work on every pixel, and flat colours do not band.

use egui::{CentralPanel, Color32, Frame, Style, Visuals};

/// The window's options: `viewport` and no dithering.
pub fn native_options(viewport: egui::ViewportBuilder) -> eframe::NativeOptions {
    eframe::NativeOptions {
        viewport,
        dithering: false,
        ..Default::default()
    }
}

/// A central panel with the usual margins and no fill.
pub fn central_panel(style: &Style) -> CentralPanel {
    CentralPanel::default().frame(Frame::central_panel(style).fill(Color32::TRANSPARENT))
}

/// A top, bottom or side panel's usual frame, with no fill.
pub fn panel_frame(style: &Style) -> Frame {
    Frame::side_top_panel(style).fill(Color32::TRANSPARENT)
}

/// What the frame is cleared to: the colour the panels' fill would have painted.
pub fn clear_color(visuals: &Visuals) -> [f32; 4] {
    visuals.panel_fill.to_normalized_gamma_f32()
}

/// Ends the frame's painting with a wait for the renderer (`glFinish`). A software renderer
/// rasterizes when the frame is swapped, which eframe leaves out of its CPU time per frame;
/// with this, that figure is the whole frame but the copy to the window. For measuring only.
pub fn finish_rasterizing_in_frame(ctx: &egui::Context) {
    use eframe::glow::HasContext;
    let finish = eframe::egui_glow::CallbackFn::new(|_, painter| {
        // SAFETY: a plain GL call on the painter's current context, inside its paint pass.
        unsafe { painter.gl().finish() }
    });
    let layer = egui::LayerId::new(egui::Order::Debug, egui::Id::unique("finish_rasterizing"));
    ctx.layer_painter(layer).add(egui::PaintCallback {
        rect: ctx.content_rect(),
        callback: std::sync::Arc::new(finish),
    });
}

/// Call before the window opens. Mesa allocates each frame's vertex and index buffers with
/// `malloc`; glibc gave the freed memory back to the kernel every frame and the next frame
/// faulted it in again, zeroed (a third of the UI thread's time with 5,000 edges on screen).
/// This keeps up to 64 MiB of freed memory for reuse instead.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters; called before any renderer thread
    // exists. Failure leaves the defaults, which are correct, only slower.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}
