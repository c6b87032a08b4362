//! The desktop app. Views are plain egui over the engine's data; only `app.rs` knows eframe.

mod app;
pub mod drift_board;
pub mod file_dialog;
pub mod frame_log;
pub mod frame_pacing;
pub mod graph;
pub mod ingest;
pub mod inspector;
pub mod layout;
pub mod log_panel;
pub mod metrics_view;
pub mod outcome;
pub mod palette;
pub mod policies_view;
pub mod schema_compare;
pub mod schemas_view;
pub mod shell;
pub mod software_gl;
pub mod sources_view;
pub mod tap_cells;
pub mod tap_export;
pub mod tap_inspector;
pub mod tap_rows;
pub mod tap_view;
pub mod value_tree;

pub use app::run_app;
