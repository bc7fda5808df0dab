#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| shared::fuzzing::agent_routing(data));
