//! Placeholder (source scanner), being written.
