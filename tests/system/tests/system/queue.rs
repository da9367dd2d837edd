//! The fair queue through the edge under workerd, with a real origin: a
//! thousand users join before the opening, are admitted in draw order, late
//! joiners queue behind them, a sell-out is told to everyone waiting, a unit
//! given back goes to the next in line, and the published draw verifies.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt as _};
use rushgate_client::Client;
use rushgate_core::Role;
use rushgate_core::api::Reservation;
use rushgate_core::draw::{self, Seed};
use rushgate_core::event::{AdmissionInput, ModeInput};
use rushgate_core::queue::wire::QueueState;
use rushgate_core::{ErrorCode, queue};
use rushgate_system_tests::{at, eventually, sale_input, stack, until_some};

struct Entrant {
    user_id: i64,
    client: Client,
    pass: String,
    /// Share of number space of the user's draw number.
    fraction: f64,
}

/// A poll's outcome and when it started and ended.
struct Seen {
    i: usize,
    state: QueueState,
    started: Instant,
    ended: Instant,
    purchase_url: Option<String>,
}

async fn poll_all(event: i64, entrants: &[Entrant], which: &[usize]) -> Vec<Seen> {
    stream::iter(which.iter().copied())
        .map(|i| async move {
            let started = Instant::now();
            let status = entrants[i]
                .client
                .queue_status(event, &entrants[i].pass)
                .await
                .unwrap();
            Seen {
                i,
                state: status.state,
                started,
                ended: Instant::now(),
                purchase_url: status.purchase_url,
            }
        })
        .buffer_unordered(32)
        .collect()
        .await
}

/// Nobody was seen admitted while someone drawn ahead of them was seen
/// waiting afterwards.
fn assert_draw_order(entrants: &[Entrant], seen: &[Seen]) {
    for a in seen.iter().filter(|s| s.state == QueueState::Admitted) {
        for b in seen.iter().filter(|s| s.state == QueueState::Waiting) {
            if b.started > a.ended {
                assert!(
                    entrants[b.i].fraction > entrants[a.i].fraction,
                    "user {} was admitted, then user {} with a better draw was still waiting",
                    entrants[a.i].user_id,
                    entrants[b.i].user_id
                );
            }
        }
    }
}

#[tokio::test]
async fn a_thousand_in_the_pre_queue_are_admitted_in_draw_order_and_the_draw_verifies() {
    let stack = stack().await;
    let front = stack.client();
    let opens_in = 12;
    let mut input = sale_input(50);
    input.per_user_limit = 1;
    input.opens_at = at(opens_in);
    input.closes_at = at(opens_in + 50);
    input.admission = Some(AdmissionInput {
        mode: Some(ModeInput::Queue),
        window_s: Some(10),
        ..AdmissionInput::default()
    });
    let started = Instant::now();
    let sale = stack.sale(&input).await.unwrap();
    let (event, tier) = (sale.id, sale.tiers[0].id);
    let commitment = sale.draw.expect("a queue shows its commitment").commitment;
    let seed: Vec<u8> = sqlx::query_scalar("SELECT draw_seed FROM events WHERE id = $1")
        .bind(event)
        .fetch_one(stack.db().await.unwrap())
        .await
        .unwrap();
    let seed: Seed = seed.try_into().unwrap();
    assert_eq!(draw::commitment(&seed), commitment);

    // A queue sale has no purchase URL for the asking.
    let (_, someone) = stack.user(Role::Customer).await.unwrap();
    let refused = someone.purchase_url(event).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::QueueRequired));
    // Nor a draw before it closes.
    let early = front.draw(event).await.unwrap_err();
    assert_eq!(early.code(), Some(ErrorCode::NotFound));

    // A thousand join before the opening.
    let joined: Vec<Entrant> = stream::iter(0..1_000)
        .map(|_| async {
            let (user_id, client) = stack.user(Role::Customer).await.unwrap();
            let status = match client.join_queue(event).await {
                Ok(status) => status,
                Err(e) => panic!("{e:?}\n{}", stack.edge_output()),
            };
            assert_eq!(status.state, QueueState::PreQueue);
            assert_eq!(status.place, 0, "places are drawn at the opening");
            Entrant {
                user_id,
                client,
                pass: status.pass.expect("a join answers with the pass"),
                fraction: queue::fraction(&draw::number_bytes(&seed, user_id)),
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut entrants = joined;
    assert!(
        started.elapsed() < Duration::from_secs(opens_in as u64),
        "the joins took {:?}: past the opening",
        started.elapsed()
    );
    // Joining again gives the same pass.
    let again = entrants[0].client.join_queue(event).await.unwrap();
    assert_eq!(again.pass.as_deref(), Some(entrants[0].pass.as_str()));
    // A pass is for its event only, and tampering shows.
    let other = entrants[0]
        .client
        .queue_status(event + 1_000, &entrants[0].pass)
        .await
        .unwrap_err();
    assert_eq!(other.code(), Some(ErrorCode::BadSignature));
    let mut forged = entrants[0].pass.clone();
    forged.insert(3, 'x');
    let forged = front.queue_status(event, &forged).await.unwrap_err();
    assert_eq!(forged.code(), Some(ErrorCode::BadSignature));

    // The opening: places come from the draw.
    let first = &entrants[0];
    let status = until_some(Duration::from_secs(opens_in as u64 + 30), || async {
        let s = first.client.queue_status(event, &first.pass).await.unwrap();
        (s.state != QueueState::PreQueue).then_some(s)
    })
    .await;
    assert!(status.place >= 1 && status.place <= 1_000, "{status:?}");
    assert!(
        (status.place as f64 - first.fraction * 1_000.0).abs() <= 1.0,
        "place {} for a draw at {}",
        status.place,
        first.fraction
    );

    // Twenty join late: they queue behind the whole pre-queue.
    let late_from = entrants.len();
    for _ in 0..20 {
        let (user_id, client) = stack.user(Role::Customer).await.unwrap();
        let status = client.join_queue(event).await.unwrap();
        assert!(
            status.place > 1_000,
            "a late joiner at place {}",
            status.place
        );
        assert_ne!(status.state, QueueState::PreQueue);
        entrants.push(Entrant {
            user_id,
            client,
            pass: status.pass.unwrap(),
            fraction: 2.0,
        });
    }

    // Everyone polls; whoever is admitted buys at once; until sold out.
    let everyone: Vec<usize> = (0..entrants.len()).collect();
    let mut bought: HashMap<usize, Reservation> = HashMap::new();
    let mut admitted_ever: HashSet<usize> = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: Vec<usize> = everyone
            .iter()
            .copied()
            .filter(|i| !bought.contains_key(i))
            .collect();
        let seen = poll_all(event, &entrants, &waiting).await;
        assert_draw_order(&entrants, &seen);
        for s in &seen {
            if let (QueueState::Admitted, Some(url)) = (s.state, &s.purchase_url) {
                assert!(
                    s.i < late_from,
                    "a late joiner admitted before the pre-queue"
                );
                if !admitted_ever.insert(s.i) {
                    continue; // tried once already
                }
                match entrants[s.i].client.buy(url, tier, 1, None).await {
                    Ok(b) => {
                        bought.insert(s.i, b.reservation);
                    }
                    Err(e) => assert_eq!(e.code(), Some(ErrorCode::SoldOut), "{e:?}"),
                }
            }
        }
        if seen.iter().any(|s| s.state == QueueState::SoldOut) {
            break;
        }
        assert!(Instant::now() < deadline, "not sold out after a minute");
    }
    assert_eq!(bought.len(), 50, "50 units, one each");
    let buyers: HashSet<usize> = bought.keys().copied().collect();

    // Sold out: everyone still waiting is told so at their next poll.
    let rest: Vec<usize> = everyone
        .iter()
        .copied()
        .filter(|i| !buyers.contains(i))
        .collect();
    eventually(Duration::from_secs(10), || async {
        let seen = poll_all(event, &entrants, &rest).await;
        seen.iter().all(|s| s.state == QueueState::SoldOut)
    })
    .await;

    // A buyer cancels: the unit goes to the next in line, not to a click.
    let (canceller, reservation) = bought.iter().next().map(|(i, r)| (*i, r.clone())).unwrap();
    eventually(Duration::from_secs(20), || async {
        entrants[canceller]
            .client
            .cancel(reservation.reservation_id)
            .await
            .is_ok()
    })
    .await;
    // The next in line is the best draw among those without a unit (whether
    // or not they were admitted before the sell-out).
    let mut in_line: Vec<usize> = rest.iter().copied().filter(|i| *i < late_from).collect();
    in_line.sort_by(|a, b| entrants[*a].fraction.total_cmp(&entrants[*b].fraction));
    let next = in_line[0];
    // (If they tried before the sell-out, their dedup window runs first.)
    eventually(Duration::from_secs(40), || async {
        let s = entrants[next]
            .client
            .queue_status(event, &entrants[next].pass)
            .await
            .unwrap();
        let Some(url) = s.purchase_url else {
            return false;
        };
        match entrants[next].client.buy(&url, tier, 1, None).await {
            Ok(_) => true,
            Err(e) if e.code() == Some(ErrorCode::DuplicateRequest) => false,
            Err(e) => panic!("the next in line could not buy: {e:?}"),
        }
    })
    .await;
    admitted_ever.insert(next);
    // Whoever drew last is still not admitted, and polls keep the order.
    let last = *in_line.last().unwrap();
    let s = entrants[last]
        .client
        .queue_status(event, &entrants[last].pass)
        .await
        .unwrap();
    assert_ne!(s.state, QueueState::Admitted);
    assert_draw_order(&entrants, &poll_all(event, &entrants, &in_line).await);

    // After the close the draw is published, and it verifies.
    let record = until_some(Duration::from_secs(90), || async {
        front.draw(event).await.ok()
    })
    .await;
    assert_eq!(record.commitment, commitment);
    assert_eq!(
        record.entrants.len(),
        1_000,
        "every pre-queue entrant is listed"
    );
    draw::verify(&record).unwrap();
    let listed: HashSet<&str> = record.admitted.iter().map(String::as_str).collect();
    for i in &admitted_ever {
        assert!(
            listed.contains(draw::entry(entrants[*i].user_id).as_str()),
            "user {} was admitted but is not in the record",
            entrants[*i].user_id
        );
    }
    for e in &entrants[late_from..] {
        assert!(!listed.contains(draw::entry(e.user_id).as_str()));
    }
    let place = draw::verify_own(&record, entrants[next].user_id).unwrap();
    assert!(place.is_some());
}

#[tokio::test]
async fn a_join_nobody_polls_after_reaches_the_origin_after_the_close() {
    let stack = stack().await;
    let mut input = sale_input(5);
    input.opens_at = at(2);
    input.closes_at = at(8);
    input.admission = Some(AdmissionInput {
        mode: Some(ModeInput::Queue),
        ..AdmissionInput::default()
    });
    let event = stack.sale(&input).await.unwrap().id;
    let (_, first) = stack.user(Role::Customer).await.unwrap();
    let (_, second) = stack.user(Role::Customer).await.unwrap();
    // The first join steps the frontier (which brings it to the origin); the
    // second comes within the isolate's second-old copy, so nothing steps for
    // it — and nobody polls after it.
    first.join_queue(event).await.unwrap();
    second.join_queue(event).await.unwrap();
    let admin = stack.admin().await.unwrap();
    eventually(Duration::from_secs(60), || async {
        let stats = admin.stats(event).await.unwrap();
        let queue = stats.queue.expect("a queue sale's stats have a queue");
        queue.pre_queue + queue.late == 2 && queue.draw_published
    })
    .await;
}
