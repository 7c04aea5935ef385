{# dbt's `relationships`, with the parent scoped to the run's days as the child is (its
   `where`): a day's test reads that day of both sides, never the parent's whole history.
   For parents partitioned by `order_date`. #}
{% test relationships_of_day(model, column_name, to, field) %}
with child as (
    select {{ column_name }} as child_key from {{ model }}
),

parent as (
    select {{ field }} as parent_key from {{ to }} where {{ for_day('order_date') }}
)

select child.child_key
from child
left join parent on parent.parent_key = child.child_key
where child.child_key is not null and parent.parent_key is null
{% endtest %}
