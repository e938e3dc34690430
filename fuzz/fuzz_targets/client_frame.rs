//! Client frames as they arrive on `/ws` and `POST /sse/{conn}`: decoding never panics, every
//! error is a documented code with a bounded message, and every reply encodes to a valid frame.
#![no_main]

use herald_core::protocol::client_frames::ClientFrame;
use herald_core::protocol::server_frames::ServerFrame;
use herald_fuzz::{check_error, DOCUMENTED_CODES};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // The gateway refuses a frame that is not UTF-8 before decoding; decode the text it keeps.
    let text = String::from_utf8_lossy(data);
    let reply = match ClientFrame::decode(&text) {
        Ok(frame) => {
            if let ClientFrame::Join { channel, .. } | ClientFrame::Leave { channel, .. } = &frame {
                assert!(herald_core::names::is_valid_name(channel), "{channel:?}");
            }
            ServerFrame::Pong {
                id: frame.id().cloned(),
            }
        }
        Err(e) => {
            check_error(&e.error);
            ServerFrame::error(e.id, &e.error)
        }
    };
    let encoded = reply.encode();
    let value: Value = serde_json::from_str(&encoded).expect("a reply is valid JSON");
    if value["type"] == "error" {
        let code = value["code"].as_str().expect("an error frame has a code");
        assert!(DOCUMENTED_CODES.contains(&code), "{code}");
    }
});
