select
    id as customer_id,
    name,
    email,
    city,
    country,
    segment,
    signup_at,
    updated_at,
    _snapshot_at as snapshot_at
from {{ source('raw', 'customers') }}
