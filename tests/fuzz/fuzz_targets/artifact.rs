//! Fuzz target: the artifact reader (`scan::symbols::scan_bytes`, with and
//! without a baseline) and the shipped-binary sniffer (`scan::blobs`) on
//! arbitrary bytes. Either returns findings or an error; neither may panic,
//! hang or read out of bounds.

#![no_main]

use std::sync::OnceLock;

use cargo_capsule::observe::Phase;
use cargo_capsule::scan::blobs;
use cargo_capsule::scan::catalogue::Catalogue;
use cargo_capsule::scan::symbols::{self, Baseline};

fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(Catalogue::builtin)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let catalogue = catalogue();
    let _ = symbols::scan_bytes(data, "fuzz", Phase::Runtime, catalogue, None);
    let baseline = Baseline::from_names(["std::env::_var_os".to_string()]);
    let _ = symbols::scan_bytes(data, "fuzz", Phase::BuildScript, catalogue, Some(&baseline));
    let _ = Baseline::from_bytes(data, "fuzz").map(|mut b| b.add_c_imports(data));
    if let Some(format) = blobs::sniff(data) {
        let _ = blobs::describe(data, format);
    }
});
