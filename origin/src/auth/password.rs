//! Password hashing with argon2id on a few threads of its own, one per core
//! but one, each with its memory allocated once: however many logins arrive at once,
//! at most that many hashes run, the process's memory stays where it was, and
//! the async runtime (and `/healthz`) never waits for a hash. A login or a
//! registration that finds every hasher busy and the short line in front of
//! them full is answered 503 `overloaded` at once.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::password_hash::{Output, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{Semaphore, oneshot};

use crate::error::ApiError;

/// Hashes that may wait for a free hasher, per hasher.
const WAITING_PER_HASHER: usize = 4;

/// The hashing threads and the permits that bound the work given to them.
#[derive(Clone)]
pub struct Hashers {
    jobs: mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    threads: usize,
}

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

impl std::fmt::Debug for Hashers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hashers")
            .field("threads", &self.threads)
            .finish()
    }
}

impl Hashers {
    /// `threads` hashing threads (at least one), which end when the last
    /// handle is dropped.
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    let mut memory = vec![Block::default(); Params::default().block_count()];
                    loop {
                        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => return,
                        }
                    }
                })
                .expect("starting a hashing thread");
        }
        Self {
            jobs,
            permits: Arc::new(Semaphore::new(threads * (1 + WAITING_PER_HASHER))),
            threads,
        }
    }

    /// One hasher per core of the machine but one, which stays with the
    /// runtime: a login storm never starves purchases or `/healthz`.
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores.saturating_sub(1).max(1))
    }

    /// Runs `work` on a hasher, or refuses at once when they are all taken.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("rushgate_password_hashes_refused_total").increment(1);
            ApiError::overloaded(1)
        })?;
        let (done, answer) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = done.send(work(memory));
            drop(permit);
        });
        self.jobs
            .send(job)
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("the hashing threads are gone")))?;
        answer
            .await
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("a hashing thread panicked")))
    }

    /// Hashes a password into a PHC string (argon2id, default parameters).
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let salt: [u8; 16] = rand::random();
        self.run(move |memory| hash_with(memory, password.as_bytes(), &salt))
            .await?
            .map_err(ApiError::Internal)
    }

    /// Checks a password against a stored hash (`None`: unknown user — a hash
    /// is checked all the same, so both take the same time — always false).
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        self.run(move |memory| {
            let known = stored.is_some();
            let stored = stored.unwrap_or_else(|| dummy_hash(memory).to_owned());
            verify_with(memory, password.as_bytes(), &stored) && known
        })
        .await
    }
}

/// A hash of a random password nobody knows.
fn dummy_hash(memory: &mut Vec<Block>) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(dummy) = DUMMY.get() {
        return dummy;
    }
    let made = hash_with(memory, &rand::random::<[u8; 32]>(), &rand::random()).unwrap_or_default();
    DUMMY.get_or_init(|| made)
}

fn hash_with(memory: &mut Vec<Block>, password: &[u8], salt: &[u8; 16]) -> anyhow::Result<String> {
    let params = Params::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(
        memory,
        &params,
        Algorithm::Argon2id,
        Version::V0x13,
        password,
        salt,
        &mut out,
    )?;
    let salt = SaltString::encode_b64(salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .map_err(|e| anyhow::anyhow!("params: {e}"))?,
        salt: Some(Salt::from(&salt)),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))?),
    };
    Ok(hash.to_string())
}

fn verify_with(memory: &mut Vec<Block>, password: &[u8], stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) =
        (Params::try_from(&hash), Algorithm::try_from(hash.algorithm))
    else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    if compute(
        memory, &params, algorithm, version, password, salt, &mut out,
    )
    .is_err()
    {
        return false;
    }
    // `Output`'s equality takes the same time whatever the bytes.
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// Argon2 in `memory`, grown (never shrunk) to the parameters' size.
fn compute(
    memory: &mut Vec<Block>,
    params: &Params,
    algorithm: Algorithm,
    version: Version,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> anyhow::Result<()> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier as _;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let hashers = Hashers::new(2);
        let a = hashers.hash("correct horse".into()).await.unwrap();
        let b = hashers.hash("correct horse".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salts differ");
        assert!(
            hashers
                .verify("correct horse".into(), Some(a.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hashers
                .verify("wrong".into(), Some(a.clone()))
                .await
                .unwrap()
        );
        assert!(!hashers.verify("anything".into(), None).await.unwrap());
        assert!(
            !hashers
                .verify("x".into(), Some("garbage".into()))
                .await
                .unwrap()
        );
        // What the argon2 crate writes and reads, this reads and writes.
        let parsed = PasswordHash::new(&a).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        let theirs = {
            use argon2::PasswordHasher as _;
            let salt = SaltString::encode_b64(&[7; 16]).unwrap();
            Argon2::default()
                .hash_password(b"pw 12345", &salt)
                .unwrap()
                .to_string()
        };
        assert!(
            hashers
                .verify("pw 12345".into(), Some(theirs))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn past_the_hashers_and_their_line_the_rest_are_refused_at_once() {
        let hashers = Hashers::new(1);
        let stored = hashers.hash("a password".into()).await.unwrap();
        let tries: Vec<_> = (0..8)
            .map(|_| {
                let h = hashers.clone();
                let s = stored.clone();
                tokio::spawn(async move { h.verify("a password".into(), Some(s)).await })
            })
            .collect();
        let mut refused = 0;
        let mut verified = 0;
        for t in tries {
            match t.await.unwrap() {
                Ok(true) => verified += 1,
                Err(e) => {
                    assert_eq!(e.code(), rushgate_core::ErrorCode::Overloaded);
                    refused += 1;
                }
                Ok(false) => panic!("a right password was refused"),
            }
        }
        assert!(
            verified >= 1 && refused >= 1,
            "{verified} verified, {refused} refused"
        );
        assert_eq!(verified + refused, 8);
    }
}
