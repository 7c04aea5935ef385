{#
  The one place the SQL differs between DuckDB and Snowflake: reading the raw JSON bytes.
  raw.orders.value holds the Kafka record's value exactly as it was on the topic (binary).
#}

{# The record's JSON document, as the dialect's JSON type. #}
{% macro order_json(column) -%}{{ adapter.dispatch('order_json')(column) }}{%- endmacro %}
{% macro duckdb__order_json(column) -%}
    try_cast(decode({{ column }}) as json)
{%- endmacro %}
{% macro snowflake__order_json(column) -%}
    {# TO_VARCHAR(binary, 'UTF-8') is the idiom; fakesnow answers it with HTTP 500. #}
    try_parse_json(hex_decode_string(hex_encode({{ column }})))
{%- endmacro %}

{# A top-level field of a JSON document as text / bigint. #}
{% macro json_text(doc, field) -%}{{ adapter.dispatch('json_text')(doc, field) }}{%- endmacro %}
{% macro duckdb__json_text(doc, field) -%}
    json_extract_string({{ doc }}, '$.{{ field }}')
{%- endmacro %}
{% macro snowflake__json_text(doc, field) -%}
    {{ doc }}:{{ field }}::varchar
{%- endmacro %}

{% macro json_bigint(doc, field) -%}
    try_cast({{ json_text(doc, field) }} as bigint)
{%- endmacro %}

{# An RFC 3339 timestamp (the API writes UTC, "...Z") as a UTC timestamp without zone. #}
{% macro utc_timestamp(text) -%}{{ adapter.dispatch('utc_timestamp')(text) }}{%- endmacro %}
{% macro duckdb__utc_timestamp(text) -%}
    cast(timezone('UTC', try_cast({{ text }} as timestamptz)) as timestamp)
{%- endmacro %}
{% macro snowflake__utc_timestamp(text) -%}
    {# a TIMESTAMP_TZ at +00:00 (fakesnow has no cast from it to TIMESTAMP_NTZ) #}
    convert_timezone('UTC', try_cast({{ text }} as timestamp_tz))
{%- endmacro %}

{#
  One row per line item of the orders in `relation` (columns order_id, order_date, doc):
  order_id, order_date, line_number (1-based), product_id, quantity.
#}
{% macro order_lines(relation) -%}{{ adapter.dispatch('order_lines')(relation) }}{%- endmacro %}
{% macro duckdb__order_lines(relation) -%}
    select
        o.order_id,
        o.order_date,
        cast(item.key as integer) + 1 as line_number,
        try_cast(json_extract_string(item.value, '$.product_id') as bigint) as product_id,
        try_cast(json_extract_string(item.value, '$.quantity') as bigint) as quantity
    from {{ relation }} as o,
        json_each(json_extract(o.doc, '$.items')) as item
{%- endmacro %}
{% macro snowflake__order_lines(relation) -%}
    select
        o.order_id,
        o.order_date,
        item.index + 1 as line_number,
        try_cast(item.value:product_id::varchar as bigint) as product_id,
        try_cast(item.value:quantity::varchar as bigint) as quantity
    from {{ relation }} as o,
        lateral flatten(input => o.doc:items) as item
{%- endmacro %}
