//! What a Pusher client or SDK names, as Herald maps it: a channel name either maps to a valid
//! Herald name that maps back to it exactly, or is refused with a bounded message; a `socket_id`
//! names a connection whose own `socket_id` names it again; an event renders to valid JSON.
#![no_main]

use herald_core::pusher::{conn_of_socket, event_frame, herald_channel, pusher_channel, socket_id};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match herald_channel("4242", &text) {
        Ok(herald) => {
            assert!(herald_core::names::is_valid_name(&herald), "{herald:?}");
            assert_eq!(pusher_channel(&herald), Some(("4242", text.to_string())));
        }
        Err(message) => assert!(message.len() < 400, "{message}"),
    }
    if let Some(conn) = conn_of_socket(&text) {
        assert_eq!(conn_of_socket(&socket_id(&conn)), Some(conn));
    }
    let payload = serde_json::to_string(&text).expect("a string encodes");
    let payload = RawValue::from_string(payload).expect("valid JSON");
    for event in ["pusher", "NEWS"] {
        let frame = event_frame("chan", event, &payload);
        serde_json::from_str::<serde_json::Value>(&frame).expect("a frame is valid JSON");
    }
});
