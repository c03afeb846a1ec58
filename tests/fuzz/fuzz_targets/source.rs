//! Fuzz target: the source scanner (`scan::source::scan_source`) on
//! arbitrary bytes. It returns findings or an error naming the file; it
//! may not panic or overflow the stack.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use cargo_capsule::observe::Phase;
use cargo_capsule::scan::catalogue::Catalogue;
use cargo_capsule::scan::source::{self, SourceFile};

fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(Catalogue::builtin)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let file = SourceFile {
        display: "src/lib.rs",
        path: Path::new("/pkg/src/lib.rs"),
        package_root: Path::new("/pkg"),
        phase: Phase::Runtime,
    };
    let _ = source::scan_source(&file, data, catalogue());
});
