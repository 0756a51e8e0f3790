"""What every Python chat client shares (the drill's synthetic users, the benchmarks' clients)."""
