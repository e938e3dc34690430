//! TURTED `POST /push` bodies: decoding and validation never panic, errors are documented codes
//! with bounded messages, and a body that validates becomes a notify a dispatcher decodes.
#![no_main]

use herald_adapters::rest::decode_push;
use herald_core::protocol::notify::Notify;
use herald_fuzz::check_error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let push = match decode_push(data) {
        Ok(push) => push,
        Err(e) => return check_error(&e.0),
    };
    match push.notify.validate() {
        Ok(()) => {
            let decoded = Notify::decode(&push.notify.encode()).expect("dispatcher decodes it");
            assert_eq!(decoded.targets, push.notify.targets);
            assert_eq!(decoded.payload.get(), push.notify.payload.get());
        }
        Err(e) => check_error(&e),
    }
});
