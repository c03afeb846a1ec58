//! Placeholder (symbols scanner), being written.
