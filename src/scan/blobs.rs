//! Placeholder (blobs scanner), being written.
