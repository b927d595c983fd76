# Sourced (not executed) by the mariadb image's entrypoint on the first start, after
# 10-shop.sql (examples/shop/mysql.sql) has created and filled `shop`: creates lookout's
# read-only user with the password of the `shop_db_password` secret. Later starts reuse
# the data volume and skip /docker-entrypoint-initdb.d entirely.
lookout_password=$(cat /run/secrets/shop_db_password)
lookout_password=${lookout_password//\\/\\\\}
lookout_password=${lookout_password//\'/\\\'}
docker_process_sql --database=mysql <<SQL
CREATE USER IF NOT EXISTS 'lookout'@'%' IDENTIFIED BY '${lookout_password}';
GRANT SELECT ON shop.* TO 'lookout'@'%';
SQL
unset lookout_password
