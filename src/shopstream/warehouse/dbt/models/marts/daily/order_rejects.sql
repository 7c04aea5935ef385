{{ config(**day_partitioned()) }}
-- Raw orders that cannot be facts, with why: nothing in the lake is silently dropped.
select
    order_id,
    order_date,
    kafka_partition,
    kafka_offset,
    kafka_timestamp,
    reject_reason
from {{ ref('int_order_checks') }}
where reject_reason is not null and {{ for_day('order_date') }}
