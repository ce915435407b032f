"""The attribution lines the data licences require (../shared/data/SOURCES.md).

Every page footer, every download and every embed carries them.
"""

ATTRIBUTION = (
    "Contains public sector information licensed under the Open Government Licence v3.0.",
    "Street-level crime and stop and search: data.police.uk (Open Government Licence v3.0).",
    "Crime figures: Metropolitan Police Service, via the London Datastore (Open Government Licence v2.0).",
    "Contains National Statistics data © Crown copyright and database right 2025.",
    "Contains OS data © Crown copyright and database right 2025.",
    "Contains Royal Mail data © Royal Mail copyright and database right 2025.",
    "Source: Office for National Statistics licensed under the Open Government Licence v.3.0.",
)

DEMO_NOTICE = "Synthetic demo data: invented areas and crimes, not real figures."
