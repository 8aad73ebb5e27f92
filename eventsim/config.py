"""Settings that tune the engines, gathered in one place.

Nothing here changes results; only speed and memory.
"""

import os

#: Default floating-point type of synaptic weights ("float64" or "float32").
DEFAULT_WEIGHT_DTYPE = "float64"

#: Steps simulated by one call into a compiled engine before control returns
#: to Python (to grow recording buffers, update DC inputs, report progress).
CHUNK_STEPS = 2000

#: Initial capacity (number of spikes) of the spike-recording buffer.
SPIKE_BUFFER_INITIAL = 1 << 16

#: Relative tolerance used to decide that a time is a multiple of ``dt``.
GRID_RTOL = 1e-9

#: Single-synapse Poisson channels of a thread partition are drawn in one
#: vectorised pass over their range of Philox groups (4 channels each) when
#: that range has at most this many groups per channel; sparser ranges are
#: drawn group by group.  Same counts either way.
POISSON_GROUP_SPAN = 1.0
#: A partition's single-synapse channels are cut into sub-ranges, each drawn in
#: its own pass, where the next channel lies more than this many Philox groups
#: after the ones before it (an MPI rank owns a block of every population:
#: without the cut it would draw the other ranks' blocks in between).
POISSON_GROUP_GAP = 16

#: Whether Numba kernels are cached on disk.
NUMBA_CACHE = True

#: Threads per block of the CUDA kernels.  Under numba-cuda's simulator
#: (``NUMBA_ENABLE_CUDASIM=1``), which runs one Python thread per CUDA thread
#: and polls them all, the default is 8: a block of 128 makes a small network's
#: step take seconds there.  Results do not depend on it.
CUDA_THREADS_PER_BLOCK = 8 if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0") else 128

#: Elements per HDF5 chunk of a streaming recorder's datasets (a chunk is the
#: unit HDF5 stores and caches; 65,536 int64 values are 512 KiB).
STREAM_CHUNK_ELEMENTS = 1 << 16

#: Values read at a time when a streaming recorder is scanned block by block.
STREAM_READ_ROWS = 1 << 22

#: Whether the clock engine's CPU threads adapt their number to the network and the machine
#: (:class:`eventsim.engines.plan.TeamTuner`): a network whose steps are too short to share between
#: threads, or a machine whose cores are busy, runs on fewer threads than ``numba.get_num_threads()``.
#: The same results either way.  The environment variable ``EVENTSIM_TEAM_TUNING=0`` turns it off
#: (every chunk on all threads).
TEAM_TUNING = os.environ.get("EVENTSIM_TEAM_TUNING", "1") != "0"

#: Whether an MPI rank of one thread runs a whole chunk of steps in one compiled call, calling
#: ``MPI_Allgather`` from compiled code (:mod:`eventsim.engines.mpi_native`; an MPI of the MPICH ABI),
#: instead of one compiled call and one mpi4py ``Allgather`` per interval.  The same results either
#: way.  The environment variable ``EVENTSIM_MPI_NATIVE=0`` turns it off.
MPI_NATIVE = os.environ.get("EVENTSIM_MPI_NATIVE", "1") != "0"

#: Steps over which the tuner measures the wall time of one team size.
TEAM_PROBE_STEPS = 200

#: Steps run on the best team size before the tuner measures its neighbours again (the load of a
#: machine changes).
TEAM_REPROBE_STEPS = 32_000

#: Neuron updates plus Poisson channels per thread between two meetings of the threads below which
#: the tuner starts with fewer threads (then measures whether more are faster).
TEAM_WORK_PER_THREAD = 1_000
