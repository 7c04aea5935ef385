select
    id as product_id,
    name,
    category,
    brand,
    cast(price as decimal(12, 2)) as price,
    currency,
    updated_at,
    _snapshot_at as snapshot_at
from {{ source('raw', 'products') }}
