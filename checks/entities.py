"""Asset check on entity resolution: no suspiciously large or mixed clusters."""

import dagster as dg

from assets.entities import ENTITIES_KEY, metadata_json
from resources import ClickHouseResource, CreditlakeHome


@dg.asset_check(asset=ENTITIES_KEY, name="suspicious_clusters",
                description="No cluster larger than the model's max_cluster_size, and no "
                            "high-confidence cluster spanning more than 2 e-mail domains.")
def entities_suspicious_clusters(clickhouse: ClickHouseResource,
                                 home: CreditlakeHome) -> dg.AssetCheckResult:
    from creditlake.entity.model import load_model  # Splink: only when the check runs
    from creditlake.entity.suspicious import suspicious_clusters

    model = load_model(home=home.home)
    with clickhouse.open() as engine:
        rep = suspicious_clusters(engine, model.max_cluster_size)
    return dg.AssetCheckResult(
        passed=rep.passed, severity=dg.AssetCheckSeverity.WARN,
        metadata={"entities_checked": dg.MetadataValue.int(rep.entities_checked),
                  "max_cluster_size": dg.MetadataValue.int(rep.max_cluster_size),
                  "limit_cluster_size": dg.MetadataValue.int(model.max_cluster_size),
                  "suspicious": metadata_json(rep.suspicious)})


ENTITY_CHECKS = [entities_suspicious_clusters]
