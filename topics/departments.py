"""The departments alerts are routed to: the names rule files use in ``departments:``."""

from __future__ import annotations

DEPARTMENTS: dict[str, str] = {
    "emergency_management": "应急管理局 Emergency management bureau",
    "fire_rescue": "消防救援支队 Fire and rescue",
    "public_security": "公安局 Public security (110)",
    "transport": "交通运输局 Transport bureau",
    "housing_utilities": "住建局/公用事业 Housing, construction and utilities (water, gas, heat)",
    "power_supply": "供电公司 Power supply company",
    "water_resources": "水利局 Water resources (flood control)",
    "meteorology": "气象局 Meteorological bureau",
    "urban_management": "城管局 Urban management (construction sites, roads, street lights)",
    "environment": "生态环境局 Ecology and environment bureau",
    "health": "卫健委 Health commission (hospitals, disease control, 120)",
    "education": "教育局 Education bureau (schools, school buses)",
    "civil_affairs": "民政局 Civil affairs (elderly and welfare)",
    "culture_and_tourism": "文旅局 Culture and tourism bureau",
    "market_regulation": "市场监管局 Market regulation (food, prices, credit)",
    "development_reform": "发改委 Development and reform (essential-goods prices)",
    "government_services": "行政审批局 Government services (approvals)",
    "performance_supervision": "效能督查 Performance supervision (行政问效)",
    "hotline_12345": "12345 热线中心 Citizen hotline centre",
    "command_center": "城市运行指挥中心 City operations command centre",
}
