select product_id, name, category, brand, price, currency, snapshot_at
from {{ ref('stg_products') }}
