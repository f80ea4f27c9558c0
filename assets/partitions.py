import dagster as dg

# One partition per landed file version ("<name>@<content hash prefix>"), added by the
# landing sensor or `creditlake ingest`.
landing_files = dg.DynamicPartitionsDefinition(name="landing_files")
