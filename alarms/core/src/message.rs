//! CloudWatch-format notification messages (placeholder).
