//! Output sinks: enriched Parquet, alert lines and dead letters.
