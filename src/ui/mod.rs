//! The desktop app. Views are plain egui over the engine's data; only `app.rs` knows eframe.

mod app;
pub mod graph;
pub mod inspector;
pub mod layout;
pub mod metrics_view;
pub mod policies_view;
pub mod shell;
pub mod tap_view;

pub use app::run_app;
