//! The desktop app. Views are plain egui over the engine's data; only `app.rs` knows eframe.

mod app;
pub mod drift_board;
pub mod graph;
pub mod inspector;
pub mod layout;
pub mod schema_compare;
pub mod schemas_view;
pub mod shell;
pub mod tap_view;

pub use app::run_app;
