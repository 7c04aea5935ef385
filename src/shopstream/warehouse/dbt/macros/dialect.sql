{#
  The one place the SQL differs between DuckDB and Snowflake: parsing the raw JSON bytes.
  raw.orders.value holds the Kafka record's value exactly as it was on the topic (binary).
  stg_orders parses each value once, into typed columns and the items as the dialect's
  array (a DuckDB LIST of STRUCTs, a Snowflake VARIANT); nothing downstream reads JSON.
#}

{# The raw value `column` parsed once (null when it is not JSON or not UTF-8). #}
{% macro parse_order(column) -%}{{ adapter.dispatch('parse_order')(column) }}{%- endmacro %}
{% macro duckdb__parse_order(column) -%}
    {#- from_json with a schema parses a document once (json_extract_* parse it per call);
        a field of the wrong type is null (a customer_id "abc"), which the checks reject -#}
    try(from_json(try(decode({{ column }})), '{"order_id": "VARCHAR", "customer_id": "BIGINT",
        "created_at": "VARCHAR", "received_at": "VARCHAR",
        "items": [{"product_id": "BIGINT", "quantity": "BIGINT"}]}'))
{%- endmacro %}
{% macro snowflake__parse_order(column) -%}
    {# TO_VARCHAR(binary, 'UTF-8') is the idiom; fakesnow answers it with HTTP 500. #}
    try_parse_json(hex_decode_string(hex_encode({{ column }})))
{%- endmacro %}

{#
  The typed columns of a parsed order `doc`: order_id, customer_id, created_at_text,
  received_at_text, items (the dialect's array of {product_id, quantity}).
#}
{% macro order_attributes(doc) -%}{{ adapter.dispatch('order_attributes')(doc) }}{%- endmacro %}
{% macro duckdb__order_attributes(doc) -%}
    {{ doc }}.order_id as order_id,
    {{ doc }}.customer_id as customer_id,
    {{ doc }}.created_at as created_at_text,
    {{ doc }}.received_at as received_at_text,
    {{ doc }}.items as items
{%- endmacro %}
{% macro snowflake__order_attributes(doc) -%}
    {{ doc }}:order_id::varchar as order_id,
    try_cast({{ doc }}:customer_id::varchar as bigint) as customer_id,
    {{ doc }}:created_at::varchar as created_at_text,
    {{ doc }}:received_at::varchar as received_at_text,
    {{ doc }}:items as items
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
  One row per line item of the orders in `relation` (columns order_id, order_date, items):
  order_id, order_date, line_number (1-based), product_id, quantity.
#}
{% macro order_lines(relation) -%}{{ adapter.dispatch('order_lines')(relation) }}{%- endmacro %}
{% macro duckdb__order_lines(relation) -%}
    {#- unnest and generate_subscripts in one select run in lockstep: item i, subscript i -#}
    select
        order_id,
        order_date,
        cast(line_number as integer) as line_number,
        item.product_id as product_id,
        item.quantity as quantity
    from (
        select
            order_id,
            order_date,
            generate_subscripts(items, 1) as line_number,
            unnest(items) as item
        from {{ relation }}
    )
{%- endmacro %}
{% macro snowflake__order_lines(relation) -%}
    select
        o.order_id,
        o.order_date,
        item.index + 1 as line_number,
        try_cast(item.value:product_id::varchar as bigint) as product_id,
        try_cast(item.value:quantity::varchar as bigint) as quantity
    from {{ relation }} as o,
        lateral flatten(input => o.items) as item
{%- endmacro %}
