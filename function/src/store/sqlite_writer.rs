//! The one thread that writes to the SQLite file, with group commit.
//!
//! SQLite serialises writers anyway; giving the write connection to one thread instead of a
//! mutex on tokio's blocking pool saves a thread hand-off and a lock convoy per request, and
//! lets the thread commit every job that queued up while it was busy in one transaction: under
//! a signing surge, one WAL commit (and one fsync when a job asks for it) serves many requests.
//!
//! Each job runs in its own savepoint, so a job that fails leaves no trace and does not affect
//! its neighbours. A job's result is handed back only after the transaction holding it has
//! committed (with the durability the most demanding job of the batch asked for), so a caller
//! never answers a client about a change that is not yet on disk.

use rusqlite::Connection;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

/// Jobs committed together at most; bounds the latency a long queue adds to its first job.
const MAX_BATCH: usize = 256;

/// How hard the commit holding a job must be pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Durability {
    /// `synchronous=NORMAL`: survives a crash of the process (new pending signatures, budgets,
    /// audit events of mails sent).
    Normal,
    /// `synchronous=FULL`: the WAL is fsynced before the result is handed back; survives a power
    /// cut (confirmations, erasures, organizer actions).
    Full,
    /// `Full`, then the WAL is checkpointed and truncated, so the old page images of erased
    /// personal data leave the files.
    FullAndWipe,
}

/// What a job left for the writer: whether its savepoint stands, and how to hand its result
/// back once the commit is known.
struct Ran {
    ok: bool,
    deliver: Box<dyn FnOnce(Result<(), String>) + Send>,
}

impl Ran {
    fn nothing() -> Ran {
        Ran {
            ok: false,
            deliver: Box::new(|_| {}),
        }
    }
}

/// A job is given the connection inside its savepoint, or the reason it cannot run.
type Run = Box<dyn FnOnce(Result<&Connection, &str>) -> Ran + Send>;

struct Job {
    durability: Durability,
    run: Run,
}

impl Job {
    fn fail(self, error: &str) {
        (self.run)(Err(error));
    }
}

/// Handle on the writer thread. Dropping it ends the thread once the queued jobs are done, and
/// waits for that: the file is closed when the store is gone (another opener may need it to
/// itself, see `grow_pages`).
pub struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    /// Transactions ended so far (committed or not), for tests and diagnostics.
    batches: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            // (Never from the writer thread itself, should a job hold the last handle.)
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Writer {
    /// Starts the thread that owns `conn`.
    pub fn start(conn: Connection, name: &str) -> anyhow::Result<Writer> {
        let (jobs, queue) = mpsc::channel();
        let batches = Arc::new(AtomicU64::new(0));
        let counter = batches.clone();
        let thread = std::thread::Builder::new()
            .name(format!("sqlite-writer {name}"))
            .spawn(move || run(conn, queue, &counter))?;
        Ok(Writer {
            jobs: Some(jobs),
            batches,
            thread: Some(thread),
        })
    }

    /// Transactions the writer has ended so far.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Runs `f` inside the writer's transaction and returns its result once committed. An error
    /// from `f` rolls back everything `f` did, and only that.
    pub async fn write<T: Send + 'static>(
        &self,
        durability: Durability,
        f: impl FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (answer, answered) = oneshot::channel();
        let run = move |conn: Result<&Connection, &str>| match conn {
            Ok(conn) => {
                let result = f(conn);
                Ran {
                    ok: result.is_ok(),
                    deliver: Box::new(move |commit: Result<(), String>| {
                        let _ = answer.send(match commit {
                            Ok(()) => result,
                            Err(e) => {
                                Err(anyhow::anyhow!("the transaction was not committed: {e}"))
                            }
                        });
                    }),
                }
            }
            Err(e) => {
                let _ = answer.send(Err(anyhow::anyhow!("no transaction could be started: {e}")));
                Ran::nothing()
            }
        };
        self.jobs
            .as_ref()
            .expect("the sender lives until drop")
            .send(Job {
                durability,
                run: Box::new(run),
            })
            .map_err(|_| anyhow::anyhow!("the SQLite writer thread has stopped"))?;
        answered
            .await
            .map_err(|_| anyhow::anyhow!("the SQLite write failed (the job panicked)"))?
    }
}

fn run(conn: Connection, queue: mpsc::Receiver<Job>, batches: &AtomicU64) {
    // Jobs taken from the queue but not reached because their batch's transaction broke.
    let mut carried: VecDeque<Job> = VecDeque::new();
    loop {
        if carried.is_empty() {
            match queue.recv() {
                Ok(job) => carried.push_back(job),
                Err(_) => return,
            }
        }
        while carried.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => carried.push_back(job),
                Err(_) => break,
            }
        }
        let take = carried.len().min(MAX_BATCH);
        let batch: Vec<Job> = carried.drain(..take).collect();
        let unreached = commit_batch(&conn, batch);
        batches.fetch_add(1, Ordering::Relaxed);
        for job in unreached.into_iter().rev() {
            carried.push_front(job);
        }
    }
}

/// Runs and commits one batch; returns the jobs it did not reach (they go first in the next).
fn commit_batch(conn: &Connection, batch: Vec<Job>) -> Vec<Job> {
    let durability = batch
        .iter()
        .map(|j| j.durability)
        .max()
        .unwrap_or(Durability::Normal);
    let full = durability >= Durability::Full;
    if full {
        let _ = conn.pragma_update(None, "synchronous", "FULL");
    }
    let restore = |conn: &Connection| {
        if full {
            let _ = conn.pragma_update(None, "synchronous", "NORMAL");
        }
    };
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let e = e.to_string();
        batch.into_iter().for_each(|job| job.fail(&e));
        restore(conn);
        return Vec::new();
    }
    let mut ran: Vec<Ran> = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    let mut broken = None;
    for job in jobs.by_ref() {
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            let e = e.to_string();
            job.fail(&e);
            broken = Some(e);
            break;
        }
        let run = job.run;
        let r = catch_unwind(AssertUnwindSafe(|| run(Ok(conn)))).unwrap_or_else(|_| Ran::nothing());
        let ok = r.ok;
        ran.push(r);
        // Some errors (disk full, I/O) make SQLite roll back the whole transaction itself;
        // running more jobs now would run them outside any transaction.
        if conn.is_autocommit() {
            broken = Some("SQLite rolled the transaction back".to_string());
            break;
        }
        let end = if ok {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(e) = conn.execute_batch(end) {
            broken = Some(e.to_string());
            break;
        }
    }
    let commit = match broken {
        Some(e) => Err(e),
        None => conn.execute_batch("COMMIT").map_err(|e| e.to_string()),
    };
    if commit.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    restore(conn);
    if commit.is_ok() && durability == Durability::FullAndWipe {
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
    for r in ran {
        (r.deliver)(commit.clone());
    }
    jobs.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path) -> (Arc<Writer>, std::path::PathBuf) {
        let path = dir.join("w.sqlite3");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .unwrap();
        (Arc::new(Writer::start(conn, "test").unwrap()), path)
    }

    fn keys(path: &std::path::Path) -> Vec<String> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn.prepare("SELECT k FROM t ORDER BY k").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    fn insert(conn: &Connection, k: &str) -> anyhow::Result<()> {
        conn.execute("INSERT INTO t (k) VALUES (?1)", [k])?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_or_panicking_job_leaves_no_trace_and_spares_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, path) = open(dir.path());
        // A first job holds the writer until the 300 others are queued behind it.
        let queued = Arc::new(AtomicU64::new(0));
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gate = {
            let (writer, queued, started) = (writer.clone(), queued.clone(), started.clone());
            tokio::spawn(async move {
                writer
                    .write(Durability::Normal, move |_| {
                        started.store(true, Ordering::SeqCst);
                        while queued.load(Ordering::SeqCst) < 300 {
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        Ok(())
                    })
                    .await
            })
        };
        while !started.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let mut tasks = Vec::new();
        for i in 0..300 {
            let (writer, queued) = (writer.clone(), queued.clone());
            tasks.push(tokio::spawn(async move {
                queued.fetch_add(1, Ordering::SeqCst);
                writer
                    .write(Durability::Normal, move |conn| {
                        insert(conn, &format!("k{i:03}"))?;
                        if i % 10 == 2 {
                            panic!("job {i} panics");
                        }
                        if i % 3 == 1 {
                            anyhow::bail!("job {i} refuses");
                        }
                        Ok(i)
                    })
                    .await
            }));
        }
        gate.await.unwrap().unwrap();
        let mut ok = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(n) => ok.push(format!("k{n:03}")),
                Err(e) => {
                    let e = format!("{e:#}");
                    assert!(i % 3 == 1 || i % 10 == 2, "job {i} failed: {e}");
                    if i % 10 != 2 {
                        assert!(e.contains("refuses"), "{e}");
                    }
                }
            }
        }
        // They were committed in groups (the savepoints were needed).
        assert!(writer.batches() <= 4, "{} transactions", writer.batches());
        assert_eq!(
            ok.len(),
            (0..300).filter(|i| i % 3 != 1 && i % 10 != 2).count()
        );
        // Exactly the jobs that answered Ok are in the file, read by another connection.
        assert_eq!(keys(&path), ok);
    }

    #[tokio::test]
    async fn an_answer_means_committed_and_wipe_truncates_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, path) = open(dir.path());
        writer
            .write(Durability::Full, |conn| insert(conn, "a"))
            .await
            .unwrap();
        assert_eq!(keys(&path), ["a"]);
        let wal = dir.path().join("w.sqlite3-wal");
        assert!(std::fs::metadata(&wal).unwrap().len() > 0);
        writer
            .write(Durability::FullAndWipe, |conn| insert(conn, "b"))
            .await
            .unwrap();
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
        assert_eq!(keys(&path), ["a", "b"]);
    }

    #[tokio::test]
    async fn a_job_that_breaks_the_transaction_fails_its_batch_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, path) = open(dir.path());
        // Ending the writer's transaction from inside a job: the job's work is not committed
        // outside a transaction, the caller hears of it, and the next job runs normally.
        let broken = writer
            .write(Durability::Normal, |conn| {
                insert(conn, "x")?;
                conn.execute_batch("ROLLBACK")?;
                Ok(())
            })
            .await;
        assert!(broken.is_err());
        writer
            .write(Durability::Normal, |conn| insert(conn, "y"))
            .await
            .unwrap();
        assert_eq!(keys(&path), ["y"]);
    }
}
