{{ config(**day_partitioned()) }}
-- One row per Kafka record of an order, its JSON parsed once (a table of the day; nothing
-- downstream reads JSON). An order sent twice (a client's retry, a replay) has several
-- copies; copy_number 1 is the first one the broker took (the enrichment keeps the first
-- too). Copies of one order share created_at, hence the day.
with records as (
    select
        {{ parse_order('value') }} as doc,
        dt as order_date,
        topic,
        "partition" as kafka_partition,
        "offset" as kafka_offset,
        kafka_timestamp
    from {{ source('raw', 'orders') }}
    where {{ for_day('dt') }}
),

parsed as (
    select
        {{ order_attributes('doc') }},
        doc is not null as is_json,
        order_date,
        topic,
        kafka_partition,
        kafka_offset,
        kafka_timestamp
    from records
)

select
    order_id,
    customer_id,
    {{ utc_timestamp('created_at_text') }} as created_at,
    {{ utc_timestamp('received_at_text') }} as received_at,
    items,
    is_json,
    order_date,
    topic,
    kafka_partition,
    kafka_offset,
    kafka_timestamp,
    row_number() over (
        partition by order_date, order_id
        order by kafka_timestamp, kafka_partition, kafka_offset
    ) as copy_number
from parsed
