{{ config(**day_partitioned()) }}
-- Per day: the raw records and distinct orders, and where each order went (fact or reject).
-- Its test (every raw order in exactly one of them, once) fails the build otherwise.
with raw_orders as (
    select
        order_date,
        cast(count(*) as bigint) as raw_records,
        cast(count(distinct order_id) as bigint) as raw_orders,
        count(case when order_id is null then 1 end) as raw_without_id
    from {{ ref('stg_orders') }}
    where {{ for_day('order_date') }}
    group by order_date
),

facts as (
    select order_date, count(*) as fact_rows, count(distinct order_id) as fact_orders
    from {{ ref('fct_orders') }}
    where {{ for_day('order_date') }}
    group by order_date
),

rejects as (
    select
        order_date,
        cast(count(*) as bigint) as reject_rows,
        cast(count(distinct order_id) as bigint) as rejected_orders,
        count(case when order_id is null then 1 end) as rejected_without_id
    from {{ ref('order_rejects') }}
    where {{ for_day('order_date') }}
    group by order_date
),

both_ as (
    select f.order_date, cast(count(*) as bigint) as in_both
    from {{ ref('fct_orders') }} as f
    join {{ ref('order_rejects') }} as r on r.order_id = f.order_id
    where {{ for_day('f.order_date') }}
    group by f.order_date
)

select
    r.order_date,
    r.raw_records,
    r.raw_orders,
    coalesce(f.fact_orders, 0) as fact_orders,
    coalesce(j.rejected_orders, 0) as rejected_orders,
    coalesce(f.fact_rows, 0) = coalesce(f.fact_orders, 0)
        and coalesce(j.reject_rows, 0) = coalesce(j.rejected_orders, 0)
            + coalesce(j.rejected_without_id, 0)
        and coalesce(b.in_both, 0) = 0
        and coalesce(f.fact_orders, 0) + coalesce(j.rejected_orders, 0) = r.raw_orders
        and coalesce(j.rejected_without_id, 0) = r.raw_without_id as accounted
from raw_orders as r
left join facts as f on f.order_date = r.order_date
left join rejects as j on j.order_date = r.order_date
left join both_ as b on b.order_date = r.order_date
