//! [`MpiGroup`]: the MPI world as a [`Collective`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::Equivalence;
use unidl_train::dist::{Collective, dist_error};

use crate::DistError;

/// The MPI environment, kept until [`finalize`].
static UNIVERSE: Mutex<Option<Universe>> = Mutex::new(None);

/// Largest count handed to one MPI call (counts are C `int`s).
const CHUNK: usize = 1 << 28;

/// The MPI world of this job (`MPI_COMM_WORLD`): rank, size, sums and
/// broadcasts for the trainer, each watched by a timeout.
#[derive(Debug)]
pub struct MpiGroup {
    rank: usize,
    world: usize,
    watch: Arc<Watch>,
}

/// The collective in progress and its deadline, checked by a watchdog
/// thread that ends the job when a collective waits too long.
#[derive(Debug)]
struct Watch {
    start: Instant,
    timeout: Duration,
    /// Deadline in ms since `start`; 0 when no collective is in progress.
    deadline_ms: AtomicU64,
    what: Mutex<&'static str>,
}

/// Clears the deadline when the collective returns.
struct Armed<'a>(&'a Watch);

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        self.0.deadline_ms.store(0, Ordering::SeqCst);
    }
}

impl Watch {
    fn arm(&self, what: &'static str) -> Armed<'_> {
        if let Ok(mut w) = self.what.lock() {
            *w = what;
        }
        let at = self.start.elapsed() + self.timeout;
        self.deadline_ms
            .store((at.as_millis() as u64).max(1), Ordering::SeqCst);
        Armed(self)
    }
}

impl MpiGroup {
    /// Initialises MPI (`MPI_Init_thread`, multi-threaded: the watchdog may
    /// abort from its own thread) and starts the watchdog; `timeout` bounds
    /// every collective.
    pub fn init(timeout: Duration) -> Result<MpiGroup, DistError> {
        let (universe, _threading) = mpi::initialize_with_threading(mpi::Threading::Multiple)
            .ok_or_else(|| {
                DistError::Init("MPI is initialised already (or was finalised)".into())
            })?;
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        *UNIVERSE
            .lock()
            .map_err(|_| DistError::Init("MPI state lock poisoned".into()))? = Some(universe);
        let watch = Arc::new(Watch {
            start: Instant::now(),
            timeout,
            deadline_ms: AtomicU64::new(0),
            what: Mutex::new(""),
        });
        let w = Arc::clone(&watch);
        std::thread::Builder::new()
            .name("unidl-mpi-watchdog".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(200));
                    let d = w.deadline_ms.load(Ordering::SeqCst);
                    if d != 0 && w.start.elapsed().as_millis() as u64 > d {
                        let what = w.what.lock().map(|g| *g).unwrap_or("collective");
                        eprintln!(
                            "unidl: rank {rank}: {what} timed out after {:.0} s waiting for the \
                             other ranks (one failed or hangs); ending the job \
                             (UNIDL_DIST_TIMEOUT_S sets the limit)",
                            w.timeout.as_secs_f64()
                        );
                        SimpleCommunicator::world().abort(3);
                    }
                }
            })
            .map_err(|e| DistError::Init(format!("watchdog thread: {e}")))?;
        Ok(MpiGroup {
            rank,
            world: size,
            watch,
        })
    }

    fn all_reduce<T: Equivalence + Copy + Default>(&self, values: &mut [T]) {
        let _armed = self.watch.arm("all-reduce");
        let world = SimpleCommunicator::world();
        for chunk in values.chunks_mut(CHUNK) {
            let send = chunk.to_vec();
            world.all_reduce_into(&send[..], chunk, SystemOperation::sum());
        }
    }
}

impl Collective for MpiGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.world
    }
    fn all_reduce_sum_f32(&self, values: &mut [f32]) -> unidl_train::Result<()> {
        self.all_reduce(values);
        Ok(())
    }
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> unidl_train::Result<()> {
        self.all_reduce(values);
        Ok(())
    }
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>, root: usize) -> unidl_train::Result<()> {
        if root >= self.world {
            return Err(dist_error(
                self.rank,
                format!("broadcast from rank {root} in a world of {}", self.world),
            ));
        }
        let _armed = self.watch.arm("broadcast");
        let world = SimpleCommunicator::world();
        let process = world.process_at_rank(root as i32);
        let mut len = bytes.len() as u64;
        process.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        for chunk in bytes.chunks_mut(CHUNK) {
            process.broadcast_into(chunk);
        }
        Ok(())
    }
    fn abort(&self, code: i32) {
        SimpleCommunicator::world().abort(code);
    }
}

/// `MPI_Finalize` (dropping the universe), once.
pub(crate) fn finalize() {
    if let Ok(mut u) = UNIVERSE.lock() {
        u.take();
    }
}
