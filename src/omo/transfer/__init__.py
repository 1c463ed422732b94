"""Bulk import and export: files in (CSV, XLSX, JSONL, Parquet, Shopify and Shopee exports) and
out (Parquet, CSV), validated whole before anything is written."""
