//! Presale codes through workerd: only code holders buy in the presale, a code
//! binds to the first account that uses it, and the presale ends on time.

use std::time::Duration;

use futures::stream::{self, StreamExt as _};
use rushgate_client::Client;
use rushgate_core::api::DoorAnswer;
use rushgate_core::event::{AdmissionInput, ModeInput};
use rushgate_core::queue::wire::QueueState;
use rushgate_core::{ErrorCode, Phase, PresaleWindow, Role, presale};
use rushgate_system_tests::{at, eventually, sale_input, stack, until_some};

fn with_code(code: &str) -> DoorAnswer {
    DoorAnswer {
        presale_code: Some(code.to_owned()),
        ..DoorAnswer::default()
    }
}

/// The export's rows: code → bound account.
fn bindings(csv: &str) -> Vec<(String, Option<i64>)> {
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("code,user_id,bound_at"));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 3, "{line}");
            assert_eq!(fields[1].is_empty(), fields[2].is_empty(), "{line}");
            (fields[0].to_owned(), fields[1].parse().ok())
        })
        .collect()
}

#[tokio::test]
async fn only_code_holders_buy_in_the_presale_and_a_code_binds_once() {
    let stack = stack().await;
    let mut input = sale_input(50);
    input.per_user_limit = 1;
    let presale_closes = at(30);
    input.presale = Some(PresaleWindow {
        opens_at: at(-1),
        closes_at: presale_closes,
    });
    input.opens_at = at(33);
    input.closes_at = at(3_600);
    let sale = stack.sale(&input).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    let window = sale.presale.expect("the event shows its presale");
    assert_eq!(
        window.closes_at.unix_timestamp(),
        presale_closes.unix_timestamp()
    );

    // Codes: generated, uploaded (any spelling, repeats once), exported.
    let admin = stack.admin().await.unwrap();
    let generated = admin.generate_presale_codes(event, 3).await.unwrap();
    assert_eq!((generated.added, generated.total), (3, 3));
    let codes: Vec<String> = bindings(&admin.presale_codes_csv(event).await.unwrap())
        .into_iter()
        .map(|(code, user)| {
            assert_eq!(user, None, "nobody holds a new code");
            code
        })
        .collect();
    let own = [
        presale::generate([3; presale::BODY_LEN]),
        presale::generate([4; presale::BODY_LEN]),
    ];
    let upload = format!(
        "code\n{}\n{}\n{}\n",
        own[0].to_lowercase(),
        own[1].replace('-', ""),
        codes[0]
    );
    let uploaded = admin.upload_presale_codes(event, &upload).await.unwrap();
    assert_eq!((uploaded.added, uploaded.total), (2, 5));
    let junk = admin
        .upload_presale_codes(event, &format!("{}\nnot a code\n", own[0]))
        .await
        .unwrap_err();
    assert_eq!(junk.code(), Some(ErrorCode::InvalidInput), "{junk}");
    assert_eq!(
        bindings(&admin.presale_codes_csv(event).await.unwrap()).len(),
        5
    );
    let (_, customer) = stack.user(Role::Customer).await.unwrap();
    let forbidden = customer.presale_codes_csv(event).await.unwrap_err();
    assert_eq!(forbidden.code(), Some(ErrorCode::Forbidden));

    // In the presale: no code, a typo or an unknown code buys nothing.
    let front = stack.client();
    let (alice_id, alice) = stack.user(Role::Customer).await.unwrap();
    let phase = front.event(event).await.unwrap().phase;
    assert_eq!(phase, Phase::Presale);
    let refused = alice.purchase_url(event).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Some(ErrorCode::PresaleCodeRequired),
        "{refused}"
    );
    let mut typo = codes[1].clone().into_bytes();
    typo[0] = if typo[0] == b'7' { b'8' } else { b'7' };
    let typo = String::from_utf8(typo).unwrap();
    let refused = alice
        .purchase_url_with(event, &with_code(&typo))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::InvalidInput), "{refused}");
    let unknown = presale::generate([5; presale::BODY_LEN]);
    let refused = alice
        .purchase_url_with(event, &with_code(&unknown))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::PresaleCodeRequired));

    // A code buys, and binds: its holder needs it no more, nobody else may use it.
    let url = alice
        .purchase_url_with(event, &with_code(&codes[1].to_lowercase()))
        .await
        .unwrap();
    assert!(
        url.expires_at <= presale_closes,
        "a presale URL ends with the presale"
    );
    alice.buy(&url.url, tier, 1, None).await.unwrap();
    alice.purchase_url(event).await.unwrap();
    let (_, bob) = stack.user(Role::Customer).await.unwrap();
    let taken = bob
        .purchase_url_with(event, &with_code(&codes[1]))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Some(ErrorCode::PresaleCodeTaken), "{taken}");

    // Twenty accounts race for one code: one wins it.
    let racers: Vec<(i64, Client)> = stream::iter(0..20)
        .map(|_| async { stack.user(Role::Customer).await.unwrap() })
        .buffer_unordered(8)
        .collect()
        .await;
    let contested = own[0].clone();
    let outcomes: Vec<(i64, Result<_, _>)> = stream::iter(&racers)
        .map(|(id, client)| {
            let answer = with_code(&contested);
            async move { (*id, client.purchase_url_with(event, &answer).await) }
        })
        .buffer_unordered(20)
        .collect()
        .await;
    let winners: Vec<i64> = outcomes
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(winners.len(), 1, "one account holds a code");
    for (_, outcome) in &outcomes {
        if let Err(e) = outcome {
            assert_eq!(e.code(), Some(ErrorCode::PresaleCodeTaken), "{e}");
        }
    }
    let bound = bindings(&admin.presale_codes_csv(event).await.unwrap());
    let holder = |code: &str| bound.iter().find(|(c, _)| c == code).unwrap().1;
    assert_eq!(holder(&codes[1]), Some(alice_id));
    assert_eq!(holder(&contested), Some(winners[0]));
    assert_eq!(bound.iter().filter(|(_, user)| user.is_some()).count(), 2);

    // After the presale, before the general sale: nobody, code or not.
    eventually(Duration::from_secs(45), || async {
        matches!(
            alice.purchase_url_with(event, &with_code(&codes[1])).await,
            Err(e) if e.code() == Some(ErrorCode::NotOpen)
        )
    })
    .await;
    let refused = bob
        .purchase_url_with(event, &with_code(&codes[2]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::NotOpen), "{refused}");

    // The general sale is everyone's.
    let url = until_some(Duration::from_secs(20), || async {
        bob.purchase_url(event).await.ok()
    })
    .await;
    bob.buy(&url.url, tier, 1, None).await.unwrap();
    // Two units held: the presale's and the general sale's, and the stock adds up.
    eventually(Duration::from_secs(60), || async {
        let stats = admin.stats(event).await.unwrap();
        let t = &stats.tiers[0];
        t.reserved == 2 && t.remaining == 48
    })
    .await;
}

#[tokio::test]
async fn a_queue_sale_s_presale_buys_directly_while_the_pre_queue_fills() {
    let stack = stack().await;
    let mut input = sale_input(10);
    input.per_user_limit = 1;
    input.presale = Some(PresaleWindow {
        opens_at: at(-1),
        closes_at: at(600),
    });
    input.opens_at = at(900);
    input.closes_at = at(3_600);
    input.admission = Some(AdmissionInput {
        mode: Some(ModeInput::Queue),
        ..AdmissionInput::default()
    });
    let sale = stack.sale(&input).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    let admin = stack.admin().await.unwrap();
    admin.generate_presale_codes(event, 1).await.unwrap();
    let csv = admin.presale_codes_csv(event).await.unwrap();
    let code = bindings(&csv)[0].0.clone();

    // A code holder buys in the presale without the queue.
    let (_, fan) = stack.user(Role::Customer).await.unwrap();
    let url = fan
        .purchase_url_with(event, &with_code(&code))
        .await
        .unwrap();
    fan.buy(&url.url, tier, 1, None).await.unwrap();
    // Everyone else joins the pre-queue meanwhile, and buys nothing yet.
    let (_, other) = stack.user(Role::Customer).await.unwrap();
    let joined = other.join_queue(event).await.unwrap();
    assert_eq!(joined.state, QueueState::PreQueue);
    let refused = other.purchase_url(event).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Some(ErrorCode::PresaleCodeRequired),
        "{refused}"
    );
}
