//! The desktop app. Views are plain egui over the engine's data; only `app.rs` knows eframe.

mod app;
pub mod graph;
pub mod ingest;
pub mod inspector;
pub mod layout;
pub mod shell;
pub mod sources_view;
pub mod tap_view;

pub use app::run_app;
