//! Fuzz target: any configuration text loads or names its errors; it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout::config::{Sources, parse_str};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sources = Sources {
        env: &|_| Some("1".to_owned()),
        read_file: &|_| Ok("secret".to_owned()),
    };
    let _ = parse_str("fuzz.yaml", text, &sources);
});
