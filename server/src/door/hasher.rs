//! Password checks, on threads of their own. argon2id takes about 19 MiB and tens of
//! milliseconds of a core for each check, on purpose: run on the runtime's blocking
//! pool (up to 512 threads), 128 sign-ins at once took 1.86 GiB and left the meetings
//! beside them waiting seconds. Here a fixed number of threads check passwords, at a
//! lower priority than the meetings (nice 10 on Linux), from a queue of fixed length;
//! a check that finds the queue full is refused at once, and the caller told to try
//! again in a moment.
//!
//! Each thread keeps its own working memory for argon2 and uses it for every check:
//! allocated afresh for each (as `argon2`'s `verify_password` does), glibc kept the
//! freed blocks and one thread's checks grew the process by 190 MiB in ten.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

struct Check {
    password: String,
    /// `None` for an email with no account: checked against a hash of a password
    /// nobody knows, so that the time taken does not tell which emails have one.
    stored: Option<Arc<str>>,
    answer: oneshot::Sender<bool>,
}

/// The threads that check passwords, and their queue.
pub struct Hasher {
    queue: Mutex<Option<mpsc::SyncSender<Check>>>,
}

/// Why a password was not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotChecked {
    /// As many checks as the queue holds are waiting.
    Busy,
}

impl Hasher {
    /// `threads` checking at once, `queue` more waiting.
    pub fn new(threads: usize, queue: usize) -> Hasher {
        let (sender, receiver) = mpsc::sync_channel::<Check>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads.max(1) {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("password-check-{n}"))
                .spawn(move || {
                    lower_priority();
                    let mut memory = Vec::new();
                    loop {
                        let next = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(check) = next else { return };
                        let stored = check.stored.as_deref().unwrap_or(DUMMY_HASH.as_str());
                        let ok = verify_in(&mut memory, &check.password, stored);
                        let _ = check.answer.send(ok);
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password-checking thread");
            }
        }
        Hasher {
            queue: Mutex::new(Some(sender)),
        }
    }

    /// Whether `password` matches the argon2 hash `stored`; refused at once when the
    /// queue is full.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<Arc<str>>,
    ) -> Result<bool, NotChecked> {
        let (answer, answered) = oneshot::channel();
        let check = Check {
            password,
            stored,
            answer,
        };
        {
            let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let Some(queue) = queue.as_ref() else {
                return Err(NotChecked::Busy);
            };
            queue.try_send(check).map_err(|_| NotChecked::Busy)?;
        }
        // A thread that ended (it cannot, short of a panic in argon2) answers no.
        Ok(answered.await.unwrap_or(false))
    }

    /// Lets the threads end once the queue is empty.
    pub fn stop(&self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// The most memory a stored hash may ask for: 64 MiB (the default is 19 MiB).
const MOST_BLOCKS: usize = 64 * 1024;

/// Whether `password` matches the PHC string `stored`, computed in `memory` (grown
/// once to what the hash's parameters need, and kept).
fn verify_in(memory: &mut Vec<argon2::Block>, password: &str, stored: &str) -> bool {
    use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        hash.version.map(Version::try_from).transpose(),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MOST_BLOCKS {
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let expected = expected.as_bytes();
    let mut computed = [0u8; 64];
    let Some(computed) = computed.get_mut(..expected.len()) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version.unwrap_or_default(), params);
    argon2
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            computed,
            &mut memory[..blocks],
        )
        .is_ok()
        // Compared in constant time.
        && computed
            .iter()
            .zip(expected)
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
}

/// An argon2id hash of a random password nobody knows (made on the first check).
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    crate::auth::hash_password(&crate::auth::new_token()).unwrap_or_default()
});

/// The meetings come first: a thread checking passwords gets the processor when they
/// leave it free.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority with the thread's own id changes only this thread's
        // nice value (on Linux the nice value is per thread); it touches no memory.
        unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
        }
    }
}
