#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    doppel_fuzz_bodies::events_csv(data);
});
