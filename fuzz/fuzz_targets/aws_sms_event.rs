#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bridge_testkit::fuzzing::aws_sms_event(data));
