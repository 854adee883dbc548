//! The UI's pages, one module each.

pub mod keys;
pub mod models;
pub mod overview;
pub mod requests;
pub mod signin;

/// The name people know a key by: its alias, else its shortened form; the master key for
/// requests made with it.
pub fn key_label(alias: Option<&str>, key_name: &str) -> String {
    match alias {
        Some(a) if !a.is_empty() => a.to_string(),
        _ if key_name.is_empty() => "master key".to_string(),
        _ => key_name.to_string(),
    }
}
