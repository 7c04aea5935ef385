{# Rows of `model` whose `columns` together are not unique (dbt_utils' test, without the
   package download: dbt deps needs hub.getdbt.com). #}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as copies
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
