//! File-tail lines: any bytes, fed in any chunks, become lines and then event payloads that are
//! valid JSON within the payload limit, and a notify a dispatcher decodes; nothing panics.
#![no_main]

use herald_adapters::file_tail::line::{payload, LineSplitter, MIN_LIMIT};
use herald_core::protocol::notify::{Notify, Targets};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Two leading bytes choose the sizes; the rest is the file, in chunks cut at 0xFF bytes.
    let [keep, limit, file @ ..] = data else {
        return;
    };
    let keep = usize::from(*keep) * 4;
    let limit = usize::from(*limit) * 4;
    let mut splitter = LineSplitter::new(keep);
    let mut lines = Vec::new();
    for chunk in file.split(|&b| b == 0xFF) {
        splitter.push(chunk, &mut lines);
    }
    lines.extend(splitter.flush());
    for line in &lines {
        assert!(line.bytes.len() <= keep && line.bytes.len() <= line.original_len);
        assert!(!line.bytes.contains(&b'\n'));
        let payload = payload(line, limit);
        let json = payload.json.get();
        assert!(
            json.len() <= limit.max(MIN_LIMIT),
            "{} > {limit}: {json:.200}",
            json.len()
        );
        // JSON grammar, as the bus and browsers read it; `1e999` is valid JSON though out of
        // serde_json::Value's range, so parse it as raw JSON.
        serde_json::from_str::<Box<serde_json::value::RawValue>>(json).expect("payload is JSON");
        let notify = Notify {
            event: "LOG:LINE".into(),
            targets: Targets {
                channels: vec!["logs".into()],
                ..Targets::default()
            },
            payload: payload.json,
        };
        let decoded = Notify::decode(&notify.encode()).expect("dispatcher decodes the line");
        assert_eq!(decoded.payload.get(), notify.payload.get());
    }
});
