//! Shared helpers of pinstack's benchmarks: medians, RSS readers, output lines.
