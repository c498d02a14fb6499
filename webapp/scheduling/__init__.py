"""Job bookkeeping the scheduler needs: per-job locks (so two scheduler processes never run
the same job at once) and the record of every run (shown by `readership jobs list`)."""
