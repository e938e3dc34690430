//! REST notify bodies (`POST /v1/notify` and the one-target `/v1/notify/user|channel/{x}`):
//! parsing and validation never panic, errors are documented codes with bounded messages, and
//! what the adapter accepts is what a dispatcher decodes from the bus.
#![no_main]

use herald_adapters::rest::decode_event_body;
use herald_core::protocol::notify::{Notify, Targets};
use herald_fuzz::check_error;
use libfuzzer_sys::fuzz_target;

/// A notify the adapter accepted must cross the bus unchanged.
fn check_accepted(notify: &Notify) {
    notify.validate().expect("accepted notify is valid");
    let decoded = Notify::decode(&notify.encode()).expect("a dispatcher decodes what was sent");
    assert_eq!(decoded.event, notify.event);
    assert_eq!(decoded.targets, notify.targets);
    assert_eq!(decoded.payload.get(), notify.payload.get());
}

fuzz_target!(|data: &[u8]| {
    match Notify::decode(data) {
        Ok(notify) => check_accepted(&notify),
        Err(e) => check_error(&e),
    }
    for targets in [
        Targets {
            users: vec!["alice".into()],
            ..Targets::default()
        },
        Targets {
            channels: vec!["chat".into()],
            ..Targets::default()
        },
    ] {
        match decode_event_body(data, targets) {
            Ok(notify) => check_accepted(&notify),
            Err(e) => check_error(&e.0),
        }
    }
});
