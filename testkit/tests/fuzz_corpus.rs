//! Replays every seed of `fuzz/corpus/<target>/` through its fuzz target's body on stable, so
//! the seeds (real provider payloads, and every input a fuzzer ever crashed on) stay
//! regression tests where CI runs. Fuzzing itself needs nightly: see `fuzz/README.md`.

use std::path::{Path, PathBuf};

use bridge_testkit::fuzzing::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()).unwrap_or_else(|e| panic!("{}: {e}", dir.display())))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_passes_its_target() {
    for (target, body) in TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(target));
        assert!(!seeds.is_empty(), "fuzz/corpus/{target} has no seeds");
        for seed in seeds {
            let data = std::fs::read(&seed).unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
            let replay = std::panic::catch_unwind(|| body(&data));
            assert!(replay.is_ok(), "fuzz target {target} fails on {}", seed.display());
        }
    }
}

#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    let mut binaries: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect();
    binaries.sort();
    let mut targets: Vec<String> = TARGETS.iter().map(|(name, _)| (*name).to_owned()).collect();
    targets.sort();
    assert_eq!(binaries, targets, "fuzz/fuzz_targets/*.rs and bridge_testkit::fuzzing::TARGETS differ");
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap_or_else(|e| panic!("{e}"));
    for target in targets {
        assert!(manifest.contains(&format!("name = \"{target}\"")), "fuzz/Cargo.toml has no [[bin]] {target}");
    }
}
