{# Models land in the schema their folder names (staging, marts), not "<target>_staging". #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}
