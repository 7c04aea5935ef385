-- One row per Kafka record of an order, parsed. An order sent twice (a client's retry, a
-- replay) has several copies; copy_number 1 is the first one the broker took (the
-- enrichment keeps the first too). Copies of one order share created_at, hence the day.
with records as (
    select
        {{ order_json('value') }} as doc,
        dt as order_date,
        topic,
        "partition" as kafka_partition,
        "offset" as kafka_offset,
        kafka_timestamp
    from {{ source('raw', 'orders') }}
)

select
    {{ json_text('doc', 'order_id') }} as order_id,
    {{ json_bigint('doc', 'customer_id') }} as customer_id,
    {{ utc_timestamp(json_text('doc', 'created_at')) }} as created_at,
    {{ utc_timestamp(json_text('doc', 'received_at')) }} as received_at,
    order_date,
    doc,
    topic,
    kafka_partition,
    kafka_offset,
    kafka_timestamp,
    row_number() over (
        partition by order_date, {{ json_text('doc', 'order_id') }}
        order by kafka_timestamp, kafka_partition, kafka_offset
    ) as copy_number
from records
