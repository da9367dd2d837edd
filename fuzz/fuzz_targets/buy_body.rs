//! Any bytes as a `/buy` body, read as the origin reads it (its JSON extractor:
//! NUL refused, the field at fault named) and checked as both edge and origin
//! check it: never a panic, and a refusal always names a field or says why.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rushgate_core::api::BuyRequest;
use rushgate_core::purchase::check_order;
use rushgate_origin::extract::parse_json;

fuzz_target!(|data: &[u8]| {
    match parse_json::<BuyRequest>(data) {
        Ok(order) => {
            // The edge reads the body with serde_json alone: it agrees.
            let edge: BuyRequest = serde_json::from_slice(data).expect("the edge reads it too");
            assert_eq!((edge.tier_id, edge.quantity), (order.tier_id, order.quantity));
            if let Err(e) = check_order(&order, [7, 8].into_iter(), 4) {
                assert!(e.field == "tier_id" || e.field == "quantity");
            }
        }
        Err(e) => assert_eq!(e.code(), rushgate_core::ErrorCode::InvalidInput),
    }
});
