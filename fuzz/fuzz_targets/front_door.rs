#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoopctl::fuzzing::front_door(data));
