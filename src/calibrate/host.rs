//! Placeholder: host inspection is being written.
#[derive(Debug, serde::Serialize)]
pub struct HostReport {}
pub fn inspect() -> HostReport {
    HostReport {}
}
impl HostReport {
    pub fn render_text(&self) -> String {
        String::new()
    }
    pub fn scenario_host_yaml(&self) -> String {
        String::new()
    }
}
