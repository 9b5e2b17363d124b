//! Notification settings (placeholder).
